//! Serving moderation classifiers over HTTP and in batch.
