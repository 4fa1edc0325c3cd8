"""Routing rules and models: META detection, the local route classifier, parsing the classifier's answer."""
