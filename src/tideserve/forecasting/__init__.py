"""Load forecasting models for predictive scaling (scaling.forecast.ForecastModel)."""
