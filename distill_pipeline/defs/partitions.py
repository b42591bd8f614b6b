import dagster as dg

from distill_pipeline import settings

# One partition per UTC day of teacher traffic.
daily = dg.DailyPartitionsDefinition(start_date=settings.partitions_start())
