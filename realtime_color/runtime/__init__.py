"""Frame in, frame out: the colorizer, the backends behind one protocol, ONNX and TensorRT export."""
