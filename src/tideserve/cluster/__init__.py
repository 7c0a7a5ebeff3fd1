"""More than one server on one database: schema migrations (Alembic), the lease that picks the
one server that runs the controller and the other background loops, and what a follower does
to serve the same API (routes from the shared instance table, changes noticed in the shared
endpoint table)."""
