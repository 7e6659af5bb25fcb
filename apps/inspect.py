"""Per-layer table of a model in the zoo (layer, output shape, parameters, connections, receptive field),
or the README's table of every model.

    python apps/inspect.py lenet5
    python apps/inspect.py resnet50 --input-shape 128,128,3 --format markdown
    python apps/inspect.py --all --format markdown
    python apps/inspect.py --all --write-readme README.md

A thin door over keras_cnns.inspect. Bad input prints one line on stderr and exits with status 2.
"""

import os
import sys

# This file is named like the standard library's `inspect`, which TensorFlow imports: keep its folder
# off the import path and put the repository root on it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402


def _quiet_native_logs():
    """TensorFlow's C++ start-up lines go to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says: send
    that descriptor to /dev/null and keep Python's sys.stderr (our messages, warnings, tracebacks of
    real bugs) on the original stream."""
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(saved, "w", buffering=1)
    except OSError:
        pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fail(message):
    sys.stderr.write(f"inspect.py: error: {message}\n")
    sys.exit(2)


def main(argv=None):
    parser = _Parser(prog="inspect.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="registry name (see keras_cnns.list_models())")
    parser.add_argument("--input-shape", help="H,W,C to build with instead of the model's default")
    parser.add_argument("--format", choices=("text", "csv", "markdown"), default="text")
    parser.add_argument("--all", action="store_true", help="the table of every registered model")
    parser.add_argument("--write-readme", metavar="README",
                        help="with --all: replace the text between the zoo markers of this file")
    args = parser.parse_args(argv)
    if args.all == bool(args.model):
        _fail("give either a MODEL name or --all")
    if args.write_readme and not args.all:
        _fail("--write-readme needs --all")
    if args.all and args.input_shape:
        _fail("--input-shape applies to one MODEL, not to --all")

    _quiet_native_logs()
    from keras_cnns import inspect as anatomy

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
    except (ValueError, OSError) as err:
        _fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
