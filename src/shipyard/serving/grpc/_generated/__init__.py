"""Generated from grpc_predict_v2.proto by shipyard.serving.grpc.generate; do not edit."""
