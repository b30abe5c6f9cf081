"""The errors training raises: :class:`TrainError` (with advice) and :class:`LeakageError`."""

from __future__ import annotations

from .data import describe_leakage


class TrainError(Exception):
    """Training cannot start or could not finish; ``advice`` says what to do about it."""

    def __init__(self, message: str, advice: str = "", key: str = "train_error") -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice
        self.key = key

    def __str__(self) -> str:
        return f"{self.message} {self.advice}".strip() if self.advice else self.message


class LeakageError(TrainError):
    """The stored scan found training records that leak validation or test records."""

    def __init__(self, leaks: list[dict]) -> None:
        super().__init__(
            "Training refused: " + describe_leakage(leaks) + ".",
            "Reject those records or move them out of the training split (the Leakage view lists them), "
            "then load the data again; or allow leakage explicitly (allow_leakage / --allow-leakage).",
            key="leakage")
        self.leaks = leaks
