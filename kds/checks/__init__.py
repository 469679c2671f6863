"""Infrastructure checks of ``kds validate-infra``: protocol and runner, the checks, presenters."""
