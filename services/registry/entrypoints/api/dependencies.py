"""What every route needs: the node it serves, and one way to run a handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request

from registry.application.ports import Clock, UnitOfWork
from registry.bootstrap import Node

Arguments = ParamSpec("Arguments")
ResultT = TypeVar("ResultT")


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(_node)]


def execute(
    node: Node,
    handler: Callable[Concatenate[UnitOfWork, Clock, Arguments], ResultT],
    *arguments: Arguments.args,
    **options: Arguments.kwargs,
) -> ResultT:
    """Run one handler (a command or a query) in a fresh unit of work.

    Domain errors propagate to the error mapping installed by ``create_app``.
    """
    return handler(node.unit_of_work(), node.clock, *arguments, **options)
