"""Command-line tools: ``substratus``, ``kubectl-applybuild`` and ``kubectl-notebook``."""
