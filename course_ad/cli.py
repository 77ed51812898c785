"""Command line: ``python -m course_ad demo`` trains an MLP on the digits in a terminal;
``release``, ``autograde``, ``feedback`` and ``grades`` run the course's nbgrader pipeline;
``workload`` counts what an assignment asks and prints its expected time."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]


def demo(epochs: int, plot: Path) -> int:
    """MLP 64-64-10 with Adam on scikit-learn's digits; prints test accuracy, saves the curves."""
    import matplotlib

    matplotlib.use("Agg")
    from . import data, nn, optim, train

    X_train, X_test, y_train, y_test = data.digits()
    model = nn.MLP([64, 64, 10], activation="relu", seed=0)
    print(f"{model} with {model.n_parameters():,} parameters; {len(X_train)} training and "
          f"{len(X_test)} test digits")
    history = train.fit(model, X_train, y_train, optimizer=optim.Adam(model.parameters(), lr=1e-3),
                        epochs=epochs, batch_size=32, validation=(X_test, y_test))
    scores = train.evaluate(model, X_test, y_test)
    print(f"trained {history.epochs} epochs in {history.seconds:.2f} s; test accuracy "
          f"{scores['accuracy']:.2%} (loss {scores['loss']:.4f})")
    plot.parent.mkdir(parents=True, exist_ok=True)
    history.plot(title="digits, MLP 64-64-10").savefig(plot, dpi=120)
    print(f"loss and accuracy curves saved to {plot}")
    return 0


def course(args: argparse.Namespace) -> int:
    """One step of the instructor's pipeline, with a per-student summary."""
    from . import grading
    from .grading.pipeline import GradingOptions, record

    root, step = args.root, args.command
    if not (root / "nbgrader_config.py").exists():
        print(f"{root.resolve()} has no nbgrader_config.py: run this in the course root",
              file=sys.stderr)
        return 2
    if args.db:  # feedback and grades read the gradebook too
        os.environ["COURSE_AD_DB_URL"] = args.db
    options = GradingOptions(jobs=args.jobs, cell_seconds=args.cell_seconds,
                             allow_unsandboxed=args.unsandboxed, db_url=args.db)
    only = args.assignments or None
    if step == "autograde":
        result = grading.autograde(root, only=only, options=options)
    elif step == "record":
        result = record(root, only=only, options=options)
    elif step == "grades":
        result = grading.grades(root)
    else:
        result = {"release": grading.release, "feedback": grading.feedback}[step](root, only=only)
    print(f"{step}:")
    print(result)
    if step == "grades":
        print(f"written to {root / 'grades.csv'}")
    if not result.ok:
        print(f"{len(result.problems)} problem(s)", file=sys.stderr)
        if args.verbose:
            print(result.log[-4000:], file=sys.stderr)
        return 1
    return 0


def try_notebook(args: argparse.Namespace) -> int:
    """Grade one notebook the trusted way and print the verdict of every test (no gradebook)."""
    from .grading.sandbox import Limits, Sandbox, SandboxUnavailableError
    from .grading.trusted import UngradableSubmissionError, grade_notebook

    try:
        sandbox = Sandbox(Limits(cell_seconds=args.cell_seconds),
                          allow_unsandboxed=args.unsandboxed)
        graded = grade_notebook(args.root, args.assignment, args.notebook, sandbox)
    except (SandboxUnavailableError, UngradableSubmissionError, FileNotFoundError) as error:
        print(f"cannot grade {args.notebook}: {error}", file=sys.stderr)
        return 2
    print(graded.summary())
    return 0


def workload(args: argparse.Namespace) -> int:
    """Print each assignment's workload table and header paragraph (``--write``: put them in)."""
    from . import workload as counted

    for assignment in args.assignments:
        path = args.root / "source" / assignment / f"{assignment}.ipynb"
        if not path.exists():
            print(f"{path} does not exist: name an assignment folder of source/",
                  file=sys.stderr)
            return 2
        try:
            measured = counted.refresh(path) if args.write else counted.measure(path)
        except ValueError as error:
            print(f"cannot count {assignment}: {error}", file=sys.stderr)
            return 2
        print(f"{assignment}\n\n{measured.table()}\n\n{counted.header_paragraph(measured)}\n")
        if args.write:
            print(f"written into {path}: run `python -m course_ad release` to update release/")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_ad", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="train an MLP on the digits with a progress bar")
    run.add_argument("--epochs", type=int, default=30)
    run.add_argument("--plot", type=Path, default=Path("build/digits_training.png"))
    for step, text in [("release", "source/ to release/, and record the reference values"),
                       ("record", "record the reference solution's values in references/"),
                       ("autograde", "grade everything in submitted/, sandboxed"),
                       ("feedback", "HTML feedback without hidden tests"),
                       ("grades", "grades.csv from the gradebook")]:
        sub = commands.add_parser(step, help=text)
        sub.add_argument("assignments", nargs="*", help="only these assignments")
        _grading_options(sub)
    sub = commands.add_parser("try", help="grade one notebook and print each test's verdict")
    sub.add_argument("assignment")
    sub.add_argument("notebook", type=Path)
    _grading_options(sub)
    sub = commands.add_parser("workload", help="words to read and answer lines to write, "
                              "in minutes: the table and the header's expected time")
    sub.add_argument("assignments", nargs="+", help="e.g. 07_how_ad_is_built")
    sub.add_argument("--root", type=Path, default=Path("."), help="the course root")
    sub.add_argument("--write", action="store_true",
                     help="rewrite the source notebook's header paragraph and task headings")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.epochs, args.plot)
    if args.command == "try":
        return try_notebook(args)
    if args.command == "workload":
        return workload(args)
    return course(args)


def _grading_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--root", type=Path, default=Path("."), help="the course root")
    sub.add_argument("-j", "--jobs", type=int, default=0,
                     help="submissions graded at once (default: one per core)")
    sub.add_argument("--cell-seconds", type=float, default=30.0,
                     help="time limit per cell, at least (default 30; and 10x the reference's)")
    sub.add_argument("--unsandboxed", action="store_true",
                     help="grade without a sandbox where none can be had (student code then "
                          "runs with your rights; the report says so)")
    sub.add_argument("--db", default="", help="the gradebook's URL, e.g. postgresql+psycopg2:"
                     "//user:password@127.0.0.1:5433/gradebook (default: nbgrader_config.py's;"
                     " COURSE_AD_DB_URL also sets it)")
    sub.add_argument("-v", "--verbose", action="store_true", help="show nbgrader's log")


if __name__ == "__main__":
    sys.exit(main())
