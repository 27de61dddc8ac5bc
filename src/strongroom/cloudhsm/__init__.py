"""The CloudHSM control plane (``cloudhsmv2``): clusters, HSMs as local node processes, and
their initialization, replacement and cloning."""
