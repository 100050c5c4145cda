"""PyTorch's MNIST example (pytorch/examples, mnist/main.py) with tenflower instead of torch:
the same Net, train(), test(), main() and flags. Data: the four IDX files read by the C data
API (tenflower.data.MNIST; --data-dir, default $TFW_MNIST_DIR or ~/.cache/tenflower/mnist;
scripts/fetch_mnist.sh downloads them), batched by the C loader.

    PYTHONPATH=build/python /usr/bin/python3 examples/mnist.py --epochs 1
"""
import argparse
import os
import sys
import time

import tenflower as torch
import tenflower.nn as nn
import tenflower.nn.functional as F
import tenflower.optim as optim
from tenflower.data import MNIST
from tenflower.optim.lr_scheduler import StepLR
from tenflower.utils.data import DataLoader


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def _progress(done, total, loss, t0, width=30):
    """One carriage-returned progress line on stderr (like the C trainer's bar)."""
    frac = done / max(total, 1)
    bar = "=" * int(width * frac) + ">" + " " * (width - int(width * frac))
    rate = done / max(time.time() - t0, 1e-9)
    sys.stderr.write("\r[{}] {}/{} loss {:.4f} {:.1f} it/s".format(bar[:width + 1], done, total,
                                                                  loss, rate))
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    t0 = time.time()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            if args.progress:
                _progress(batch_idx + 1, len(train_loader), loss.item(), t0)
            else:
                print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                    epoch, batch_idx * len(data), len(train_loader.dataset),
                    100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break
    if args.progress and not args.dry_run:
        _progress(len(train_loader), len(train_loader), loss.item(), t0)


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))
    return correct / len(test_loader.dataset)


def main():
    # Training settings
    parser = argparse.ArgumentParser(description='tenflower MNIST Example')
    parser.add_argument('--batch-size', type=int, default=64, metavar='N',
                        help='input batch size for training (default: 64)')
    parser.add_argument('--test-batch-size', type=int, default=1000, metavar='N',
                        help='input batch size for testing (default: 1000)')
    parser.add_argument('--epochs', type=int, default=14, metavar='N',
                        help='number of epochs to train (default: 14)')
    parser.add_argument('--lr', type=float, default=1.0, metavar='LR',
                        help='learning rate (default: 1.0)')
    parser.add_argument('--gamma', type=float, default=0.7, metavar='M',
                        help='Learning rate step gamma (default: 0.7)')
    parser.add_argument('--no-cuda', action='store_true', default=False,
                        help='disables CUDA training')
    parser.add_argument('--no-mps', action='store_true', default=False,
                        help='disables macOS GPU training')
    parser.add_argument('--dry-run', action='store_true', default=False,
                        help='quickly check a single pass')
    parser.add_argument('--seed', type=int, default=1, metavar='S',
                        help='random seed (default: 1)')
    parser.add_argument('--log-interval', type=int, default=10, metavar='N',
                        help='how many batches to wait before logging training status')
    parser.add_argument('--save-model', action='store_true', default=False,
                        help='For Saving the current Model')
    # tenflower's additions
    parser.add_argument('--data-dir', default=os.environ.get(
        'TFW_MNIST_DIR', os.path.expanduser('~/.cache/tenflower/mnist')),
        help='directory with the MNIST IDX files')
    parser.add_argument('--progress', action='store_true', default=False,
                        help='a progress bar on stderr instead of the log lines')
    parser.add_argument('--limit', type=int, default=0, metavar='N',
                        help='use only the first N training images (0: all)')
    args = parser.parse_args()
    device = torch.device("cpu")  # tenflower runs on the CPU: --no-cuda/--no-mps are no-ops

    torch.manual_seed(args.seed)

    train_kwargs = {'batch_size': args.batch_size, 'shuffle': True, 'seed': args.seed}
    test_kwargs = {'batch_size': args.test_batch_size}
    # ToTensor + Normalize((0.1307,), (0.3081,)) happen in C (tenflower.data.normalize_u8)
    dataset1 = MNIST(args.data_dir, train=True).dataset()
    dataset2 = MNIST(args.data_dir, train=False).dataset()
    if args.limit:
        dataset1 = type(dataset1)(*(t[:args.limit] for t in dataset1.tensors))
    train_loader = DataLoader(dataset1, **train_kwargs)
    test_loader = DataLoader(dataset2, **test_kwargs)

    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    for epoch in range(1, args.epochs + 1):
        train(args, model, device, train_loader, optimizer, epoch)
        test(model, device, test_loader)
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), "mnist_cnn.safetensors")


if __name__ == '__main__':
    main()
