from os import PathLike
from typing import Any, Iterable, TypedDict

import pyarrow

__version__: str

class ModrlError(RuntimeError): ...

class _Result(TypedDict, total=False):
    label: int
    score: float
    category: str
    reasoning: str

class Classifier:
    def __init__(
        self,
        model: str | PathLike[str],
        policy: str | PathLike[str],
        adapter: str | PathLike[str] | None = None,
        scoring: str = "verdict-token",
        device: str = "cpu",
        batch_rows: int = 32,
        threshold: float = 0.5,
        dtype: str = "f32",
        max_new_tokens: int = 384,
        seed: int = 0,
        variant: str = "standard",
        no_system_role: bool = False,
        threads: int | None = None,
    ) -> None: ...
    @property
    def scoring(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    def score(self, texts: Iterable[str]) -> list[_Result]: ...
    def score_arrow(
        self, table: pyarrow.Table | pyarrow.RecordBatch, text_column: str = "text"
    ) -> pyarrow.Table: ...
