"""Instruction data in the LEADSInstruct format, built from what leads knows to be right.

:func:`build` turns a review project's accepted work and the annotated public data sets into
conversational JSON Lines (``{"messages": [...]}``) with leads' own task prompts and answers in
the JSON each task validates, deduplicated, split into train and test by review, trial or article,
and described by a datasheet. :mod:`leads.train` fine-tunes a model on the result.
"""

from leads.instruct.build import DEFAULT_TASKS, BuildOptions, BuildResult, build, collect
from leads.instruct.example import (
    Example,
    ExampleRejected,
    make_call_example,
    make_example,
    read_examples,
)
from leads.instruct.split import split_examples

__all__ = [
    "DEFAULT_TASKS",
    "BuildOptions",
    "BuildResult",
    "Example",
    "ExampleRejected",
    "build",
    "collect",
    "make_call_example",
    "make_example",
    "read_examples",
    "split_examples",
]
