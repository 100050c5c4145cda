/* Prints docs/ops.md (the op coverage table) generated from the registry. */
#include <stdio.h>
#include <stdlib.h>

char *tfw__ops_markdown(void);

int main(void) {
  char *md = tfw__ops_markdown();
  if (!md) return 1;
  fputs(md, stdout);
  free(md);
  return 0;
}
