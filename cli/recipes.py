"""`eventvision recipes`: the shipped recipes, one a line."""

from __future__ import annotations

import click


@click.command()
def recipes() -> None:
    """List the shipped recipes (--pipeline NAME), one a line."""
    from eventvision.pipelines import describe_recipes

    described = describe_recipes()
    width = max(len(name) for name in described)
    for name, description in described.items():
        click.echo(f"{name:<{width}}  {description}")
