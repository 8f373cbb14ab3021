"""Channel KPIs: the `channel_kpis` and `omnichannel_comparison` marts, for charts.

No personal data: monthly counts and sums per channel.
"""

from __future__ import annotations

from typing import Any

from cdp.web.db import Reader


def channel_kpis(reader: Reader) -> dict[str, Any] | None:
    """Monthly rows per channel, totals per channel, and omnichannel vs single-channel figures;
    None when the marts were not built yet."""
    if not reader.has("main", "channel_kpis"):
        return None
    monthly = reader.rows("""
        select month, channel, reach, converted_customers, conversion_rate, buyers, orders,
               revenue, avg_order_value, omnichannel_revenue_per_buyer,
               single_channel_revenue_per_buyer, omnichannel_spend_index
        from channel_kpis order by month, channel""")
    totals = reader.rows("""
        select channel, sum(orders) as orders, sum(revenue) as revenue,
               sum(revenue) / nullif(sum(orders), 0) as avg_order_value,
               sum(omnichannel_revenue) as omnichannel_revenue,
               sum(single_channel_revenue) as single_channel_revenue,
               sum(reach) as reach_months, sum(converted_customers) as converted_months
        from channel_kpis where channel <> 'all' group by channel order by revenue desc""")
    comparison = (reader.rows("""
        select customer_type, customers, orders, revenue, revenue_per_customer,
               orders_per_customer, avg_order_value, spend_index, frequency_index, basket_index
        from omnichannel_comparison order by customer_type""")
                  if reader.has("main", "omnichannel_comparison") else [])
    spend_index = next((r["spend_index"] for r in comparison
                        if r["customer_type"] == "omnichannel"), None)
    return {"monthly": monthly, "totals": totals, "comparison": comparison,
            "spend_index": spend_index,
            "months": len({r["month"] for r in monthly})}
