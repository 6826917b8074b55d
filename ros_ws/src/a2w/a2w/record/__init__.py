"""The recorder: demonstrations as crash-durable LeRobot v3 datasets (docs/architecture.md §8).

* ``layout``: the on-disk layout (stock LeRobot v3.0: ``meta/info.json``, ``meta/tasks.parquet``,
  ``meta/episodes/``, ``data/``, ``videos/``) and the features the rig records;
* ``durable``: fsync'd writes and renames, the only way this package touches committed files;
* ``encoder``: one video encoder thread per camera, fed through a bounded, measured queue;
* ``writer``: ``DatasetWriter`` (open or resume a dataset, repair what a crash left) and
  ``EpisodeWriter`` (stage one episode, then commit it atomically);
* ``rows``: the 30 Hz grid: one frame per camera per row from stamp-paired sets, stalled cameras
  duplicated and flagged, never shifted;
* ``component``: the ``record_node`` component wiring it to topics and the episode service.
"""
