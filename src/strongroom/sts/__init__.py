"""STS on the Strongroom endpoint (AWS Query protocol)."""
