"""Per-layer table of a model in the zoo (layer, output shape, parameters, connections, receptive field), or
the README's table of every model.

    python apps/inspect.py lenet5
    python apps/inspect.py resnet50 --input-shape 128,128,3 --format markdown
    python apps/inspect.py --all --format markdown
    python apps/inspect.py --all --write-readme README.md

A thin door over keras_cnns.anatomy. Bad input prints one line on stderr and exits with status 2.
"""

import argparse
import sys

from keras_cnns import cli
from keras_cnns.cli import USER_ERRORS, first_line, quiet_native_logs


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fail(message):
    sys.stderr.write(f"inspect.py: error: {message}\n")
    sys.exit(2)


def parse_args(argv=None):
    parser = cli.parser(__doc__, prog="inspect.py", cls=_Parser)
    parser.add_argument("model", nargs="?", help="registry name (see keras_cnns.list_models())")
    parser.add_argument("--input-shape", help="H,W,C to build with instead of the model's default")
    parser.add_argument("--format", choices=("text", "csv", "markdown"), default="text")
    parser.add_argument("--all", action="store_true", help="the table of every registered model")
    parser.add_argument("--write-readme", metavar="README",
                        help="with --all: replace the text between the zoo markers of this file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.all == bool(args.model):
        _fail("give either a MODEL name or --all")
    if args.write_readme and not args.all:
        _fail("--write-readme needs --all")
    if args.all and args.input_shape:
        _fail("--input-shape applies to one MODEL, not to --all")

    quiet_native_logs()
    from keras_cnns import anatomy

    try:
        if args.all:
            if args.write_readme:
                anatomy.write_readme(args.write_readme)
                print(f"wrote the zoo table into {args.write_readme}")
            else:
                sys.stdout.write(anatomy.zoo_table(args.format))
            return 0
        shape = None if args.input_shape is None else anatomy.parse_input_shape(args.input_shape)
        sys.stdout.write(anatomy.model_table(args.model, shape, args.format))
    except USER_ERRORS as err:
        _fail(first_line(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
