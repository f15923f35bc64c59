"""Environment families ctp knows, one subpackage each: ``pointmaze`` and ``locomotion``."""
