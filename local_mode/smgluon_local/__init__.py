"""smgluon_local: host-side code (docker-free SageMaker local mode, command line).

Runs on the user's machine, never inside the containers; it may import the
SageMaker SDK and toolkits. ``lib/smgluon`` never imports it.
"""
