"""The active-learning engine: features, models and query strategies.

numpy, scipy and scikit-learn only; nothing here knows about the web or the database, so it
can be tested, benchmarked and simulated alone.
"""

from app.al.models import build_classifier, build_featurizer
from app.al.strategies import STRATEGIES, QueryStrategy, get_strategy, strategy_choices

__all__ = [
    "STRATEGIES",
    "QueryStrategy",
    "build_classifier",
    "build_featurizer",
    "get_strategy",
    "strategy_choices",
]
