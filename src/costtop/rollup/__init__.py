"""costtop's own pre-aggregate of the gateway's calls: sums per minute, hour and UTC day (issue 19).

Start-up, the month, the anomalies' week and a past day's report read these buckets up to the point
they are complete, and the raw rows only after it, so their cost does not grow with the day's rows.
Who keeps the buckets: the Python gateway in the transaction of its insert (gateway.py), or the
`costtop rollup` job for any other gateway (job.py). costtop writes only this schema, never the
gateway's tables.
"""
