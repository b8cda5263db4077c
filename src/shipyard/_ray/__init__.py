"""What every Ray user in Shipyard shares: being a driver of a cluster (``connect``) and
handing secrets to the processes on it (``secrets``).

Below both of its users, the ``ray`` flavor (``deployers/ray``) and batch's Ray engine
(``batch/_ray``); it imports only ``errors`` and ``secrets``. Importing it imports no Ray.
"""
