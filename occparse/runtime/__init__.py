"""Inference: image -> face mesh and face region -> crops -> networks on ONNX Runtime -> features -> estimate.

Never imports torch. ``session`` (ONNX Runtime sessions and device choice), ``io`` (read_image),
``faces`` (finding faces: detectors, orientation, the subject), ``detector`` (MediaPipe's face
detectors), ``mesh`` (Face Mesh landmarks, head pose), ``regions`` (face region R, sub-regions), ``align``
(aligned crops), ``parsing`` (face parser),
``regression`` (ResNet-18 regressors), ``occlusion`` (the geometric feature), ``stacking`` (the stacker),
``pipeline`` (Estimator), ``results`` (typed results), ``rows`` (output rows), ``batch`` and
``distributed`` (local and Ray batch engines), ``visualize`` (the picture), ``strictjson``.
"""
