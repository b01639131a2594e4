"""Reading whole text lines with CTC: the pieces the line experiments share.

``ocr-lines`` (``tasks/experiments/ocr_lines.py``) is assembled from these, and
new line experiments reuse them instead of copying:

- :mod:`tasks.ctc_lines.data` -- the rendered splits (train, validation,
  seen-font and held-out-font test lines) as flat arrays, their on-disk cache
  for sweep workers, the pen-feature scale, the static window features and
  :class:`~tasks.ctc_lines.data.LineView` minibatches;
- :mod:`tasks.ctc_lines.models` -- the time-delay MLP and the (bidirectional)
  recurrent nets, built from a spec;
- :mod:`tasks.ctc_lines.training` -- the one function that trains a model
  with CTC (:func:`~tasks.ctc_lines.training.train_model`, on
  ``rnnbp.losses.ctc`` itself) and reads lines with a trained model;
- :mod:`tasks.ctc_lines.scoring` -- CER/WER per font and length, and the
  misreadings of look-alike letters;
- :mod:`tasks.ctc_lines.figures` -- the figures of a line experiment.
"""
