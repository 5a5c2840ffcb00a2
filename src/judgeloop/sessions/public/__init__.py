"""Importers for public human-labelled judge datasets (PandaLM, LLMBar, XSTest, QAGS).

Each format turns a dataset folder (or one of its files) into a :class:`Converted` bundle:
criteria, sessions, one human label per annotator, and replay rows built from the judge
outputs recorded beside the data. The datasets are read from where they are
(``$JUDGELOOP_PUBLIC_DATA_DIR``, default ``../shared/datasets``); nothing is copied. Each
module's docstring states its label mapping and how unparseable verdicts are counted.
"""

from judgeloop.sessions.public import llmbar, pandalm, qags, xstest
from judgeloop.sessions.public.base import (
    DATA_DIR_ENV,
    Converted,
    Converter,
    DatasetError,
    ReplayRow,
    data_dir,
    find_data_dir,
)
from judgeloop.sessions.public.replay import write_replay
from judgeloop.sessions.public.storing import StoreReport, store_converted

FORMATS: dict[str, Converter] = {
    converter.name: converter
    for converter in (
        Converter(
            "pandalm",
            "pandalm_testset",
            "PandaLM test set: 999 pairs, 3 annotators, GPT-3.5 and PandaLM-7B verdicts",
            pandalm.convert,
        ),
        Converter(
            "llmbar",
            "llmbar",
            "LLMBar and processed MT-Bench/LLMEval^2/FairEval pairs, gold label, evaluator runs",
            llmbar.convert,
        ),
        Converter(
            "xstest",
            "xstest",
            "XSTest v2: 2,250 completions, 2 annotators + adjudication, GPT-4 and string match",
            xstest.convert,
        ),
        Converter(
            "qags",
            "qags_mturk",
            "QAGS: 953 summary sentences, supported yes/no by 3 crowd workers",
            qags.convert,
        ),
    )
}

__all__ = [
    "DATA_DIR_ENV",
    "FORMATS",
    "Converted",
    "Converter",
    "DatasetError",
    "ReplayRow",
    "StoreReport",
    "data_dir",
    "find_data_dir",
    "store_converted",
    "write_replay",
]
