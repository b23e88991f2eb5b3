"""The consumers: one package per Lambda function (``worker``, ``archiver``, ``rollup``) and what they
share: ``processing`` (prepare/commit batch processing), ``stream`` (Kinesis decoding), ``entry``."""
