"""corpusql: an embedded corpus store for language-model training data."""
from ._corpusql import __version__
