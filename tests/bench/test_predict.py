"""The bench's engine sections call models as scikit-learn does; its predict section compares that with the app's path."""

import numpy as np
import pytest

from bench.tables import breast_cancer_table, registry_predictor
from explanations.ml.engine import table_predict


def test_engine_sections_call_scikit_learn_and_the_predict_section_the_compiled_path(monkeypatch):
    table = breast_cancer_table()
    plain = registry_predictor(table, "random_forest", {"n_estimators": 10})
    compiled = registry_predictor(table, "random_forest", {"n_estimators": 10}, compiled=True)
    X = table.X_test[:20]
    np.testing.assert_array_equal(plain.predict_proba(X), compiled.predict_proba(X))

    def refuse(self, X):
        raise AssertionError("the compiled loop was called")

    monkeypatch.setattr(table_predict.ForestPredict, "__call__", refuse)
    plain.predict_proba(X)  # scikit-learn's own predict_proba: the compiled loop is never asked
    with pytest.raises(AssertionError, match="compiled loop"):
        compiled.predict_proba(X)
