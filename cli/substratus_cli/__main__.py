"""``python -m substratus_cli`` is the ``substratus`` command."""

from substratus_cli import substratus

substratus.main()
