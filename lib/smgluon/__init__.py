"""smgluon: shared code for SageMaker script-mode MXNet Gluon entry points.

This package runs inside the SageMaker MXNet training and serving containers
(ship it with ``MXNet(..., dependencies=["lib/smgluon"])``), so it imports only
the standard library, mxnet, numpy and json-logging, and importing it has no
side effects. One module per concern:

* :mod:`smgluon.hyperparameters` — declaration and parsing of hyperparameters;
* :mod:`smgluon.environment` — SM_* variables with local fallbacks;
* :mod:`smgluon.context` — CPU/GPU contexts;
* :mod:`smgluon.kvstore` — kvstore choice, its hyperparameter, and which host saves the model;
* :mod:`smgluon.training` — the kvstore and trainer of a workload, and the training loop's pieces;
* :mod:`smgluon.distributed` — several hosts: workers, shards, equal batch counts, summed metrics;
* :mod:`smgluon.cpu_speed` — CPU speed fixes (denormals, the SGD kernel);
* :mod:`smgluon.idx`, :mod:`smgluon.channels` — data files and channel layouts;
* :mod:`smgluon.images` — pictures turned into model inputs;
* :mod:`smgluon.image_classifier` — the serving script for image classifiers brought from elsewhere;
* :mod:`smgluon.movielens` — reading the MovieLens-100k files;
* :mod:`smgluon.recommend` — what recommenders share: catalog, top-k answers, negative sampling;
* :mod:`smgluon.ranking` — top-k evaluation of recommenders (the NCF protocol, HR@k, NDCG@k);
* :mod:`smgluon.metrics` — metric lines, regexes and metrics.json;
* :mod:`smgluon.failure` — the failure file;
* :mod:`smgluon.checkpoints` — checkpoints to resume from;
* :mod:`smgluon.files` — files written whole or not at all;
* :mod:`smgluon.export` — the served model's files;
* :mod:`smgluon.serving` — request decoding, the Accept check and client errors for ``transform_fn``;
* :mod:`smgluon.script` — script-mode glue: path options, train, save on the first host.
"""

__version__ = "0.1.0"
