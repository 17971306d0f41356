"""Registry: the strategy name stored on a project -> the class that implements it."""

from app.al.strategies.auto import Auto
from app.al.strategies.base import QueryStrategy
from app.al.strategies.committee import ConsensusEntropy, KLDisagreement, VoteEntropy
from app.al.strategies.density import DensityWeighted
from app.al.strategies.error_reduction import ExpectedErrorReduction
from app.al.strategies.hybrid import Badge, MarginDensity, MarginDiverse, MarginRandom
from app.al.strategies.model_change import ExpectedGradientLength
from app.al.strategies.random import RandomSampling
from app.al.strategies.uncertainty import EntropySampling, LeastConfidence, MarginSampling

STRATEGIES: dict[str, type[QueryStrategy]] = {
    cls.name: cls
    for cls in (RandomSampling, LeastConfidence, MarginSampling, EntropySampling,
                VoteEntropy, ConsensusEntropy, KLDisagreement, ExpectedGradientLength, ExpectedErrorReduction,
                DensityWeighted,
                MarginRandom, MarginDensity, MarginDiverse, Badge, Auto)
}


def get_strategy(name: str, **params) -> QueryStrategy:
    """A configured strategy by registry name; unknown names raise KeyError naming the choices."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; choose one of {', '.join(sorted(STRATEGIES))}") from None
    return cls(**params)


def strategy_choices() -> list[tuple[str, str]]:
    """(name, one-line explanation) for forms and docs."""
    return [(name, cls.description) for name, cls in STRATEGIES.items()]


__all__ = ["STRATEGIES", "QueryStrategy", "get_strategy", "strategy_choices"]
