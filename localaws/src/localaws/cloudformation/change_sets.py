"""CloudFormation change sets that end as AWS ends them: the stack holds the new template and its outputs.

``aws cloudformation deploy`` (what the README runs against AWS) is CreateChangeSet,
wait, ExecuteChangeSet, wait, then DescribeStacks for the outputs. moto 5 executes a
change set's resources but leaves the stack as it was before: a stack created through a
change set keeps an empty template, so DescribeStacks answers no ``Outputs``; an updated
stack keeps its old outputs and description. After moto's own ExecuteChangeSet this sets
what AWS sets: the template, its description and parameters, and the outputs evaluated
against the stack's resources.
"""

from __future__ import annotations

import threading
from typing import Any

_installed = False
_lock = threading.Lock()


def install() -> None:
    """Wrap moto's ``CloudFormationBackend.execute_change_set`` once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.cloudformation.models import CloudFormationBackend

        original = CloudFormationBackend.execute_change_set

        def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
            original(self, change_set_name, stack_name)
            change_set = self.describe_change_set(change_set_name)
            stack = self.stacks[change_set.stack_id]
            stack.template = change_set.template
            stack._parse_template()
            stack.description = stack.template_dict.get("Description")
            if change_set.parameters:
                stack.parameters = change_set.parameters
            stack.output_map = stack._create_output_map()

        CloudFormationBackend.execute_change_set = execute_change_set
        _installed = True
