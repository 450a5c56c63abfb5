"""Representation analysis: what a backbone's layers and channels respond to.

- :mod:`~mmdream.analysis.param`: Fourier image parametrisation, colour decorrelation (measured from photos);
- :mod:`~mmdream.objectives.visualization`: channel (one per batch item), neuron, class, direction, diversity;
- :mod:`~mmdream.analysis.visualize`: feature visualisation from noise, pictures or (audio backbones) sounds, under
  transformation robustness (:mod:`mmdream.ops.transforms`, shared with class dreams);
- :mod:`~mmdream.analysis.atlas`: channel atlases in batches, the channels that matter for a class;
- :mod:`~mmdream.analysis.examples`: the dataset patches / snippets that excite a channel most;
- :mod:`~mmdream.analysis.report`: the static HTML report of ``mmdream analyze``.
"""
