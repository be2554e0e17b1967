{{ config(alias='fct_orders') }}

select
    o.order_id,
    o.customer_id,
    o.order_date,
    o.status,
    coalesce(p.amount, 0) as amount
from {{ ref('stg_orders') }} as o
left join {{ ref('order_payments') }} as p on p.order_id = o.order_id
