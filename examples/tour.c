#include <stdio.h>
#include <tenflower/tenflower.h>
int main(void) { printf("tenflower %s\n", tfw_version()); return 0; }
