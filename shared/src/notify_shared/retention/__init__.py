"""Retention of personal data and records (docs/privacy.md).

- `windows`: the two windows, from settings (no SQLAlchemy, so settings can import it);
- `rules`: what each table may keep, and the rules registered by the installed services;
- `job`: applying them, on a schedule in each service and through `notify purge` / `notify erase`.
"""
