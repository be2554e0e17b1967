with customer_orders as (
    select
        customer_id,
        count(*) as number_of_orders,
        min(order_date) as first_order_date,
        sum(amount) as lifetime_value
    from {{ ref('orders') }}
    group by customer_id
)

select
    c.customer_id,
    c.first_name || ' ' || c.last_name as full_name,
    c.email,
    coalesce(co.number_of_orders, 0) as number_of_orders,
    co.first_order_date,
    coalesce(co.lifetime_value, 0) as lifetime_value
from {{ ref('stg_customers') }} as c
left join customer_orders as co on co.customer_id = c.customer_id
