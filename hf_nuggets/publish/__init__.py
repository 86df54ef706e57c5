"""Publishing scored data: dataset cards, Hub export and push, plots and diversity figures."""
