"""a2w's launch frontend extension for the real ``ros2 launch``: the ``<fail_on_node_error/>`` action.

``ros2 launch`` exits 0 unless an error reaches its run loop (launch's ``LaunchService``), so a
node that dies does not make it fail, not even one with ``on_exit="shutdown"``: the launch just
shuts down, "successfully". ``<fail_on_node_error/>`` registers an ``OnProcessExit`` handler for
every process of the launch. A process exiting non-zero while the launch is not already shutting
down is reported to the launch's event loop as an error, which makes ``ros2 launch`` exit 1, and
the launch shuts down (by the process's own ``on_exit="shutdown"`` if it has one, else by this
handler: one shutdown either way). Exits after the shutdown began (the SIGINT/SIGTERM launch sends
the others: 130/143, or killed) are not failures. A node exiting 0 with ``on_exit="shutdown"``
(the sim expert's success) still ends the launch with 0.

Only one shutdown: launch_ros's ROS adapter (which ``<node_container>`` uses to load nodes) raises
when a second ``Shutdown`` event reaches it, which makes ``ros2 launch`` exit 1 after a success.
So a launch file gives ``on_exit="shutdown"`` to the node whose exit is the verdict, not also to a
container that launch then stops; this action ends the launch when the container dies.

Registered through the ``launch.frontend.launch_extension`` entry point (``setup.py``), which
launch's ``Parser`` loads before it parses a file. ``a2w launch`` accepts the same tag: in one
process the first component that stops the run ends it, with its exit code, already
(docs/architecture.md §9).
"""

from __future__ import annotations

from typing import Any

from launch.action import Action
from launch.actions import Shutdown
from launch.event_handlers import OnProcessExit
from launch.events.process import ProcessExited
from launch.frontend import Entity, Parser, expose_action
from launch.launch_context import LaunchContext

TAG = "fail_on_node_error"


def shuts_down_on_exit(action: Any) -> bool:
    """Whether a process action ends the launch itself when it exits (``on_exit="shutdown"``)."""
    return any(isinstance(e, Shutdown) for e in action.get_sub_entities())


class ExitWatch:
    """The handler's state for one launch: whether its shutdown is already on its way."""

    def __init__(self) -> None:
        self.ending = False

    def __call__(self, event: ProcessExited, context: LaunchContext) -> Shutdown | None:
        """Fail the launch for a non-zero exit that is not part of the launch's own shutdown."""
        # A process with on_exit="shutdown" has queued the launch's Shutdown: launch sets
        # is_shutdown only once that event is processed, and another exit may come first.
        ending, self.ending = self.ending or context.is_shutdown, self.ending or shuts_down_on_exit(event.action)
        if event.returncode == 0 or ending:
            return None
        reason = f"process {event.process_name} exited with code {event.returncode} ({TAG})"
        # What LaunchService does with any error of its loop: ros2 launch then exits 1.
        context.asyncio_loop.call_exception_handler({"message": f"{reason}: failing the launch"})
        if self.ending:
            return None  # its own on_exit ends the launch
        self.ending = True
        return Shutdown(reason=reason)


@expose_action(TAG)
class FailOnNodeError(Action):
    """Fail the launch (``ros2 launch`` exits 1) when any of its processes exits non-zero."""

    @classmethod
    def parse(cls, entity: Entity, parser: Parser) -> tuple[type, dict[str, Any]]:
        _, kwargs = super().parse(entity, parser)
        entity.assert_entity_completely_parsed()  # the tag takes no attributes or children
        return cls, kwargs

    def execute(self, context: LaunchContext) -> None:
        context.register_event_handler(OnProcessExit(on_exit=ExitWatch()))
        return None
