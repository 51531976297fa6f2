"""The app pages; each module exposes `render(ctx: AppContext) -> None`."""
