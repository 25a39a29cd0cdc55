"""Command and dispatch (指挥调度): tasks for resources, response plans (预案) and their checklists, the duty log."""
