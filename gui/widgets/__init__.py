"""Small widgets the views share: form fields, the error strip, progress, the centring editor."""
