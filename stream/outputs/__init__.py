"""Where events and states go besides files: webhooks and MQTT (Home Assistant). Each runs off the
scoring thread behind a bounded queue; a slow or failing receiver lags or drops (counted)."""
