"""Identity resolution: source records from every channel -> customers and golden profiles.

Public API (each returns a `cdp.summary.StepSummary`):

- `resolve(settings)`: raw lake -> identity tables in the warehouse (schema `identity`);
- `evaluate(settings, truth_path)`: pairwise and B-cubed scores against a truth file;
- `explain_records(settings, "channel:id", "channel:id")`: why two records are (not) linked;
- `explain_customer(settings, customer_id)`: what makes up one customer.
"""

from identity.evaluate import evaluate
from identity.explain import explain_customer, explain_records
from identity.resolve import resolve

__all__ = ["evaluate", "explain_customer", "explain_records", "resolve"]
