"""The product page ("you may also like") and the cart ("complete the look")."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse, RedirectResponse

from vendome.serve.deps import Service
from vendome.serve.schemas import CartCompletion, CartRequest, Problem, SimilarProducts

router = APIRouter(tags=["products"])


@router.get("/v1/products/{product_id}/similar", response_model=SimilarProducts,
            responses={404: {"model": Problem}, 409: {"model": Problem}})
def similar(svc: Service, product_id: Annotated[str, Path(min_length=1, max_length=128)],
            k: Annotated[int, Query(ge=1, le=100)] = 10,
            signal: Annotated[Literal["image", "text"], Query(description="embedding compared")] = "image") -> dict:
    """Pieces most alike the product, never beside a line kept apart from it."""
    try:
        return svc.similar(product_id, k=k, modality=signal)
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
    except ValueError as err:
        raise HTTPException(409, detail=str(err)) from None


@router.post("/v1/cart/complete-the-look", response_model=CartCompletion,
             responses={404: {"model": Problem}, 422: {"model": Problem}})
def complete_the_look(body: CartRequest, svc: Service) -> dict:
    """Pieces of other subcategories that complete the cart (bought together, or her model's choice)."""
    try:
        return svc.complete_the_look(body.product_ids, k=body.k, customer_id=body.customer_id)
    except KeyError as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
    except ValueError as err:
        raise HTTPException(422, detail=str(err)) from None


@router.get("/v1/products/{product_id}/image", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}, 307: {"description": "remote URL"},
                       404: {"model": Problem}})
def image(svc: Service, product_id: Annotated[str, Path(min_length=1, max_length=128)]):
    """The piece's picture from the workspace's files (cards carry this path); a remote image URL redirects."""
    try:
        where = svc.image_path(product_id)
    except (KeyError, LookupError) as err:
        raise HTTPException(404, detail=str(err).strip("'\"")) from None
    if isinstance(where, str):
        return RedirectResponse(where, status_code=307)
    return FileResponse(where, headers={"Cache-Control": "public, max-age=86400"})
