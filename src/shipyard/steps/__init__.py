"""Standard steps for continuous deployment: decide, deploy, find, predict.

``deployment_trigger`` -> ``model_deployer_step`` -> ``prediction_step`` make a pipeline that
deploys a model only when it is good enough and keeps the last good one serving;
``prediction_service_loader`` finds a deployed server from another pipeline. ``predictor``
is the deprecated old name of ``prediction_step``.
"""

from shipyard.steps._deploy import model_deployer_step, prediction_service_loader
from shipyard.steps._mlflow import mlflow_model_registry_deployer_step
from shipyard.steps._predict import prediction_step, predictor
from shipyard.steps._trigger import deployment_trigger

__all__ = [
    "deployment_trigger",
    "mlflow_model_registry_deployer_step",
    "model_deployer_step",
    "prediction_service_loader",
    "prediction_step",
    "predictor",
]
