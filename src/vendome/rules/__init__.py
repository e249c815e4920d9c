"""Guardrails a merchandiser declares in a YAML file, compiled against a catalog and applied on every list."""

from vendome.rules.guard import Guard, Request
from vendome.rules.policy import DEFAULT_RULES, Policy, PolicyError, load_policy, parse_policy, save_policy

__all__ = ["DEFAULT_RULES", "Guard", "Policy", "PolicyError", "Request", "load_policy", "parse_policy",
           "save_policy"]
