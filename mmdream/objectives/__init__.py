"""What a dream maximises: terms over a backbone's taps, themes, feature-visualisation terms."""
