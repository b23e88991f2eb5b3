"""Local mode: the whole pipeline on one machine, on an AWS emulator, around the deployed handler code.

Only the event sources are emulated here (API Gateway, the SQS and Kinesis event source mappings);
the handlers are the same modules that run in Lambda and talk to the emulator over the AWS wire
protocol through boto3.
"""
