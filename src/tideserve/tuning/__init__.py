"""Policy tuning on a trace (`tideserve tune`): policy families (families.py), the search on
the trace's training part and the report on its held-out part (search.py), the calls that
install the choice (install.py)."""
